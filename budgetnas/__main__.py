import sys

from budgetnas.cli import main

sys.exit(main())
