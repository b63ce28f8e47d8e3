"""The sensitivity core: factors, designs, accumulators, methods, the one loop and the one-call estimators.

Everything here works on any function of independent factors (a tensor of factor values in, a tensor
of outputs out); nothing imports torchvision, images or model code.  The augmentation-study layer
(:mod:`augsens.engine`) builds its factors and drives the same methods (:mod:`augsens.core.methods`)
through the same loop (:mod:`augsens.core.loop`) with a network's activations.
"""
