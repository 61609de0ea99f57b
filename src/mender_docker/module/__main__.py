"""`python -m mender_docker.module STATE FILE_TREE_DIR`."""

import sys

from mender_docker.module.main import main

sys.exit(main())
