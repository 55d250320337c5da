"""Sub-commands of the ``trainstats`` CLI, one module each (see ``trainstats.cli``)."""
