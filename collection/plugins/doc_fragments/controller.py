# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""What fledge's controller-side modules share: they run on the controller, for each host."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""
