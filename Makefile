.PHONY: run test bench build clean

run:    ## serve on 127.0.0.1:8478 with ./data/registry.sqlite
	scripts/run

test:   ## every test
	scripts/test

bench:  ## wrk benchmarks; writes BENCHMARKS.md
	scripts/bench/run

build:
	swift build -c release --product endpoint-registry

clean:
	rm -rf .build
