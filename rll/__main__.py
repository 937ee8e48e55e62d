from rll.cli import main

raise SystemExit(main())
