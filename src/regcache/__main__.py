from regcache.main import main

raise SystemExit(main())
