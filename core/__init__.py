"""kgfusion core: load, fine-tune, evaluate, quantize, compress and serve small transformer encoders."""
