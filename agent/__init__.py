"""An organization's agent: base model + LoRA adapter, teacher and student roles, Pass@1 evaluation.

Learning core, one job per module:

* :mod:`agent.data` - the procedurally generated, seeded code-problem suite, its disjoint
  non-IID splits (Dirichlet category mixes) and the public pretraining corpus;
* :mod:`agent.models` - shared byte-level BPE tokenizer, the heterogeneous tiny model zoo
  (Llama-, GPT-2-, GPT-NeoX-style) with cached public pretraining, LoRA attachment, and
  the real-benchmark loaders (HumanEval, SmolLM2-135M) for larger hardware;
* :mod:`agent.training` - fixed-budget supervised steps (loss on completion tokens only);
* :mod:`agent.teacher` / :mod:`agent.student` - bundle production and distillation;
* :mod:`agent.payload` - the bundle payload dataclass and its tensor form (the single
  place where the exchange layer's ``KnowledgeBundle`` will be converted);
* :mod:`agent.sandbox` / :mod:`agent.evaluate` - sandboxed Pass@1;
* :mod:`agent.agent` - :class:`~agent.agent.Agent`, what the runtime drives:
  ``agent.teach(transfer, evaluator) -> BundlePayload`` and
  ``agent.learn(payload, evaluator) -> LearnReport`` (whose ``gain`` is the reward);
* :mod:`sim.experiment` - the federation experiment with pluggable pairing policies;
* :mod:`agent.cli` - ``app`` (typer): ``data-table``, ``build-zoo``, ``evaluate``.
"""
