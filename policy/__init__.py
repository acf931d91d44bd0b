"""CrossGuard policy pack for the GPU-slicing program: `pulumi preview --policy-pack policy`.

`rules.py` holds every rule as a plain function (tested directly, and run by `make plan` over the offline
graph); `pack.py` wraps them as CrossGuard policies; `__main__.py` serves them as a PolicyPack. Only
`__main__.py` constructs `PolicyPack(...)`, which starts a gRPC server and blocks: never import it.
"""
