# Every target runs on Node.js 24 LTS from the cache (the machine's own Node.js is 20).
NODE_DIR := $(shell bash hack/ensure-node.sh)
export PATH := $(NODE_DIR)/bin:$(PATH)
export npm_config_nodedir := $(NODE_DIR)

.PHONY: demo test deps build lint unit e2e bench soak controlplane clean image

## demo: a local control plane, pods in network namespaces, agents and the controller; cut and restore a link (KEEP=1: stay up until Ctrl-C)
demo: deps build
	node --import tsx hack/demo.ts $(if $(KEEP),--keep)

## test: lint, typecheck, build, unit and e2e tests (against a real kube-apiserver + etcd)
test: deps lint build
	npx vitest run

deps:
	@bash hack/ensure-deps.sh

## build: the half-open TCP prober's native part (build/Release/syn.node, which `npm ci` builds too) and dist/
build: build/Release/syn.node
	npx tsc -p tsconfig.json
	node hack/bundle.mjs

build/Release/syn.node: binding.gyp native/syn.c
	npm run --silent install

lint:
	npx tsc -p tsconfig.check.json
	npx eslint .

unit: deps
	npx vitest run --project unit

e2e: deps build
	npx vitest run --project e2e

## soak: the gray-failure soak (docs/benchmarks.md): 10 minutes with abstainWhenStarved on, then 10 off; MINUTES=N per phase
soak: deps build
	node --import tsx bench/soak.ts $(or $(MINUTES),10)

## controlplane: start a detached local control plane and print its kubeconfig (stop with `make controlplane-stop`)
controlplane: deps
	node --import tsx test/harness/cli.ts start

controlplane-stop:
	node --import tsx test/harness/cli.ts stop

## image: build the OCI image with podman (installed if missing); name it with IMAGE=<registry>/eps-probe-plugin:<tag>
## (default localhost/eps-probe-plugin:<package.json version>), then `podman push <that name>`
image:
	IMAGE=$(IMAGE) bash hack/build-image.sh

clean:
	rm -rf dist build
