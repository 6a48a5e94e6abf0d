"""``python -m kgfusion.knowledge.rules convert-context SRC_DIR OUT.yaml`` | ``check [--kinds MODULE] PATH...``."""
from kgfusion.knowledge.rules.convert import main

raise SystemExit(main())
