# Container, data and shell-lint targets; the top-level Makefile includes this file. It expects PYTHON
# (the venv's python) and VERSION (DeBERTa.__version__) from the Makefile.
#
#   make docker-build                 build $(IMAGE) from docker/Dockerfile
#   make docker-push                  push $(IMAGE) (after docker login)
#   make docker-run RUN_ARGS='--gpus 0,1 ./mrpc.sh base'    run_docker.sh with $(IMAGE)
#   make docker-smoke                 build on a local Debian base with podman, fine-tune tiny inside
#   make glue-data [GLUE_TASKS='RTE MRPC'] [GLUE_DATA_DIR=...]   download GLUE for the container's /data
#   make lint-docker lint-shell       hadolint on docker/Dockerfile, shellcheck on every *.sh and *.sbatch

IMAGE ?= bagai/deberta:$(VERSION)
DOCKER ?= docker
# Flags before the subcommand (podman without systemd: --runtime runc --cgroup-manager cgroupfs ...).
DOCKER_GLOBAL_FLAGS ?=
DOCKER_BUILD_FLAGS ?=
RUN_ARGS ?=
# The host folder run_docker.sh mounts at /data by default, so the scripts inside find glue_tasks/.
GLUE_DATA_DIR ?= $(or $(DEBERTA_DATA_DIR),$(HOME)/deberta/data)
GLUE_TASKS ?=
HADOLINT ?= $(dir $(PYTHON))hadolint
SHELLCHECK ?= shellcheck
SHELL_SCRIPTS = $(shell find . \( -name '*.sh' -o -name '*.sbatch' \) -not -path './.venv/*' -not -path './.git/*' | sort)

.PHONY: docker-build docker-push docker-run docker-smoke glue-data lint-docker lint-shell

docker-build: ## build $(IMAGE) from docker/Dockerfile
	$(DOCKER) $(DOCKER_GLOBAL_FLAGS) build $(DOCKER_BUILD_FLAGS) -f docker/Dockerfile \
		--build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		-t $(IMAGE) .

docker-push: ## push $(IMAGE) (after docker login)
	$(DOCKER) $(DOCKER_GLOBAL_FLAGS) push $(IMAGE)

docker-run: ## run_docker.sh with $(IMAGE); RUN_ARGS='--gpus 0,1 ./mrpc.sh base'
	DOCKER=$(DOCKER) DOCKER_GLOBAL_FLAGS='$(DOCKER_GLOBAL_FLAGS)' ./run_docker.sh --image $(IMAGE) $(RUN_ARGS)

docker-smoke: ## build on a local Debian base with podman and fine-tune tiny inside (root)
	PYTHON=$(PYTHON) docker/smoke.sh

glue-data: ## download GLUE into $(GLUE_DATA_DIR)/glue_tasks (GLUE_TASKS='RTE MRPC')
	experiments/glue/download_data.sh $(GLUE_DATA_DIR) $(GLUE_TASKS)

lint-docker: ## hadolint on docker/Dockerfile
	$(HADOLINT) docker/Dockerfile

lint-shell: ## shellcheck on every shell script
	$(SHELLCHECK) -x $(SHELL_SCRIPTS)
