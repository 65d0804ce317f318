"""python -m launch — every service and Envoy, supervised (what `make run` runs)."""
import sys

from launch.supervisor import main

sys.exit(main())
