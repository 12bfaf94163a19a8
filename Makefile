# The two commands of the README. Both create the environment when needed
# (scripts/setup_env.sh: the active venv/conda env, else ./.venv).
.PHONY: app test

app:
	@py=$$(scripts/setup_env.sh) && $$py -m streamlit run app.py

test:
	@py=$$(scripts/setup_env.sh test) && $$py -m pytest
