"""What test modules share; a test module imports from here (or from tests/images.py,
tests/rows.py, tests/system.py), never from another test module.

- `api`: talking to the API: the one submit helper, the one error shape, the queue spy.
- `product`: pipelines of a test's own, side APIs, processed images.
- `jobs`: jobs written straight to the database (a failed job no worker saw).
- `photos`: images as cameras write them (orientation tags, XMP, extra segments).
- `pixels`: images drawn for the pixel steps, checks on their output, a step run.
- `webhook`: a webhook receiver on a free port.
"""
