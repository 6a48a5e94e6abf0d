"""``kgfusion kg``: build, inspect and query the knowledge graphs; link mentions to entities."""
