"""The moto server as scripts/test runs it (same arguments as
`python -m moto.server`), with one fix to its ECS answers.

The ECS API defines a task's `containers[].cpu` and `containers[].memory` as
strings. moto 5.2 echoes the container definition's integers there, and the
AWS SDK for Rust, which checks types, rejects the whole RunTask and
DescribeTasks answer. This makes them strings, as ECS sends them.
"""

import sys

from moto.ecs import models
from moto.server import main

_init = models.Container.__init__


def _init_with_string_sizes(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    for name in ("cpu", "memory"):
        value = getattr(self, name, None)
        if value is not None and not isinstance(value, str):
            setattr(self, name, str(value))


models.Container.__init__ = _init_with_string_sizes

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
