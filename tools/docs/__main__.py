import sys

from tools.docs import main

sys.exit(main(sys.argv[1:]))
