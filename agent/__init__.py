"""An organization's agent: base model + LoRA adapter, teacher and student roles, Pass@1 evaluation."""
