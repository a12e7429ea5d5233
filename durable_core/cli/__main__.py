"""``python -m durable_core.cli``: the ``durable`` command."""

import sys

from durable_core.cli.commands import main

sys.exit(main())
