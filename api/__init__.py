"""The HTTP gateway: validates uploads, stores jobs, enqueues them, answers at once."""
