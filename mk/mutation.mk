# Mutation testing (mutmut) of the core modules against their fast tests -> bench/results/mutation.json.
# Others append their modules and tests here; survivors must be argued in bench/mutation_equivalent.json.
MUTATION_MODULES ?= exchange/cid.py exchange/unixfs.py
MUTATION_TESTS ?= tests/exchange/test_unixfs.py tests/exchange/test_known_answers.py
MUTATION_JOBS ?= 2

.PHONY: mutation
mutation: bootstrap  ## mutmut over $(MUTATION_MODULES) -> bench/results/mutation.json
	$(BIN)/python bench/mutation.py --modules $(MUTATION_MODULES) --tests $(MUTATION_TESTS) \
		--max-children $(MUTATION_JOBS) --check
