"""The sensitivity core: factors, designs, accumulators and the one-call estimators.

Everything here works on any function of independent factors (a tensor of factor values in, a tensor
of outputs out); nothing imports torchvision, images or model code.  The augmentation-study layer
(:mod:`augsens.engine`) builds its factors and drives these estimators with a network's activations.
"""
