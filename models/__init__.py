"""Models trained on views of the context graph: CAL, InfoAlign, IsoCLR."""
