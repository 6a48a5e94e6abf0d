"""Clinical record NER: notes -> disease / drug mentions with ConText assertion and KG concepts."""
