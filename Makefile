# AuthGPTs. `make run` serves on http://localhost:8080; `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PG_DIR   := .data/pg
GOTEST   ?= go test -count=1 -timeout 9m

.PHONY: run build stop-db test check-tracked check-fmt vet generate check-generated node-deps chromium bench

## run: start the local PostgreSQL when DATABASE_URL is unset, migrate, serve on :8080.
run: build
	@set -e; \
	if [ -z "$$DATABASE_URL" ]; then \
	  export DATABASE_URL="$$(go run ./cmd/devdb start $(PG_DIR))"; \
	  echo "Local PostgreSQL in $(PG_DIR) (stop it with: make stop-db)"; \
	fi; \
	exec ./bin/authgpts serve

build:
	go build -o bin/authgpts ./cmd/authgpts

## stop-db: stop the local PostgreSQL cluster that `make run` started.
stop-db:
	go run ./cmd/devdb stop $(PG_DIR)

## test: formatting, vet, generated files up to date, then every test against a
## throwaway PostgreSQL cluster (started here when DATABASE_URL is unset).
test: check-tracked check-fmt vet check-generated chromium
	@set -e; \
	if [ -z "$$DATABASE_URL" ]; then \
	  dir="$$(mktemp -d /tmp/authgpts-test-pg.XXXXXX)"; chmod 755 "$$dir"; \
	  trap 'go run ./cmd/devdb stop "'"$$dir"'" >/dev/null 2>&1 || true; rm -rf "'"$$dir"'"' EXIT; \
	  export DATABASE_URL="$$(go run ./cmd/devdb start "$$dir")"; \
	fi; \
	$(GOTEST) ./...

## check-tracked: fail when a compiled binary or a build output is committed: any
## tracked file that is an ELF, Mach-O or PE executable by its first bytes, or whose
## path is a build output (bin/, *.test, *.out, *.prof, object files and libraries,
## the authgpts and bench binaries that `go build` leaves in the checkout).
check-tracked:
	@bad="$$( { git -c core.quotepath=off ls-files | grep -E '(^|/)(authgpts|bench)$$|(^|/)bin/|\.(test|out|prof|exe|dll|so|dylib|o|a)$$'; \
	  git -c core.quotepath=off ls-files --eol | awk -F '\t' '$$1 ~ /^i\/-text/ { print $$2 }' | while IFS= read -r f; do \
	    case "$$(git cat-file blob ":$$f" | head -c 4 | od -An -tx1 | tr -d ' \n')" in \
	      7f454c46|feedface|feedfacf|cefaedfe|cffaedfe|cafebabe|4d5a*) echo "$$f";; \
	    esac; \
	  done; } | sort -u)"; \
	if [ -n "$$bad" ]; then \
	  echo "Compiled binaries or build outputs are committed; remove them (git rm --cached) and let .gitignore keep them out:"; \
	  echo "$$bad" | sed 's/^/  /'; exit 1; \
	fi

check-fmt:
	@out="$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

node-deps:
	@[ -d node_modules/tailwindcss ] && [ -d node_modules/htmx.org ] || npm ci --no-audit --no-fund --loglevel=error

## generate: templ components, Tailwind CSS and the vendored htmx (all committed).
generate: node-deps
	go tool templ generate
	npx tailwindcss -i views/tailwind.css -o static/app.css --minify 2>/dev/null
	cp node_modules/htmx.org/dist/htmx.min.js static/htmx.min.js

generated_digest = find views -name '*_templ.go' | sort | xargs cat static/app.css static/htmx.min.js | sha256sum

## check-generated: regenerate and fail when that changed anything.
check-generated:
	@before="$$($(generated_digest))"; \
	$(MAKE) -s generate >/dev/null; \
	after="$$($(generated_digest))"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "Generated files were stale (templ, CSS or htmx); they are regenerated now: commit them."; exit 1; \
	fi

## bench: build the server, start it on a throwaway PostgreSQL with PostgreSQL's stock
## durability settings (fsync and synchronous_commit on, unlike the test cluster), and load it from a
## separate process (cmd/bench) over loopback. BENCH_FLAGS passes flags to cmd/bench,
## e.g. make bench BENCH_FLAGS="-scenarios jwks -concurrency 8 -duration 2s".
BENCH_PORT  ?= 18080
BENCH_FLAGS ?=
bench:
	@set -e; \
	go build -o bin/authgpts ./cmd/authgpts; go build -o bin/bench ./cmd/bench; \
	dir="$$(mktemp -d /tmp/authgpts-bench.XXXXXX)"; chmod 755 "$$dir"; log="$$dir.server.log"; pid=""; \
	trap '[ -z "$$pid" ] || { kill $$pid; wait $$pid; } 2>/dev/null; go run ./cmd/devdb stop "'"$$dir"'" >/dev/null 2>&1 || true; rm -rf "'"$$dir"'" "'"$$log"'"' EXIT; \
	export DATABASE_URL="$$(go run ./cmd/devdb start -stock "$$dir")"; \
	export AUTHGPTS_SECRET="$$(head -c 32 /dev/urandom | base64 | tr -d '=+/')-bench"; \
	export AUTHGPTS_BASE_URL="http://127.0.0.1:$(BENCH_PORT)" AUTHGPTS_ADDR="127.0.0.1:$(BENCH_PORT)"; \
	./bin/authgpts serve 2>"$$log" & pid=$$!; \
	./bin/bench -base "$$AUTHGPTS_BASE_URL" $(BENCH_FLAGS)

## chromium: browser tests need Debian's chromium; install it when we can (root + apt).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing chromium for the browser tests..."; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is not installed: browser tests skip locally and fail under CI=true."; \
	  fi; }
