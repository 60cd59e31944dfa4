"""``python -m hum_dagster.cli``: the same as the ``hum`` command."""

import sys

from hum_dagster.cli.main import main

sys.exit(main())
