"""Request and response models, one module per resource, separate per direction."""
