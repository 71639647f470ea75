# The project's commands. `make test` is the whole test suite (what CI runs once installed);
# `make docs` builds the documentation site into site/ and fails on a broken link.
export OMP_NUM_THREADS := 1
PYTEST := python -m pytest -q
NBVAL := --nbval-lax --nbval-current-env
REFERENCE_NOTEBOOKS := notebooks/02_progressive_selection.ipynb

.PHONY: test unit notebooks reference docs

test: unit notebooks reference docs

unit:  ## unit tests, the browser tests included, in two worker processes
	PROMIX_PROFILE=ci $(PYTEST) -n 2 --dist worksteal --durations=15 tests

notebooks:  ## every notebook top to bottom in the small ci profile
	PROMIX_PROFILE=ci $(PYTEST) -n 2 --dist loadscope $(NBVAL) notebooks/

reference:  ## the notebooks that draw the shipped full-scale runs
	PROMIX_PROFILE=reference $(PYTEST) $(NBVAL) --nbval-sanitize-with tests/reference_sanitize.cfg $(REFERENCE_NOTEBOOKS)

docs:
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir site
