"""Pure logic of the GPU-slicing program: config model, GPU/MIG catalog, placement, capacity.

Nothing in this package imports Pulumi; it is unit-testable in microseconds and shared by the
Pulumi components, the offline plan, the policy pack and the layout advisor.
"""
