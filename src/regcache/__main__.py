import sys
from collections.abc import Callable

main: Callable[[], int]
if sys.argv[1:2] == ["post"]:
    from regcache.post import main
elif sys.argv[1:2] == ["prune"]:
    from regcache.prune import main
else:
    from regcache.main import main

raise SystemExit(main())
