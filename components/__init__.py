"""Pulumi ComponentResources, one per file, each named for what it models.

They turn the validated `gpu_slicing` model into resources; they hold no validation of their own.
"""
