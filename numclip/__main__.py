import sys

from numclip.cli import main

sys.exit(main())
