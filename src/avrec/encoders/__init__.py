"""Pretrained encoders, one small module per modality, behind one contract
(:class:`avrec.encoders.base.Encoder`), a registry and a content-hash cache."""
