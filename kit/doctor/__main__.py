"""``python -m kit.doctor`` is ``kit doctor``."""

import sys

from kit.doctor import doctor_main

sys.exit(doctor_main(sys.argv[1:]))
