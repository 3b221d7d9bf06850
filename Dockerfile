# The reference image for a Fastify service that shuts down gracefully on Kubernetes.
# Copy it as it is; the comments say why each line is there.
#
# No `# syntax=` line: the BuildKit frontend built into Docker >= 20.10 understands
# `RUN --mount`, and a syntax line would make every build pull a frontend image first.

# Node 26 is the Active LTS line (LTS since 2026-10-28; 24 is in maintenance since
# 2026-10-20). bookworm-slim: small, glibc, and the distribution CI reproduces locally
# (node:26-trixie-slim is a drop-in). An ARG so tests can build FROM a local stand-in:
#   docker build --build-arg NODE_IMAGE=fastify-graceful-k8s/node-base:local .
ARG NODE_IMAGE=node:26-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies --------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the `npm ci` layer is reused until they change. The repository is an npm workspace:
# the root is the plugin, service/package.json the service (the doctor's workspace is not needed here).
COPY package.json package-lock.json ./
COPY service/package.json ./service/
# The optional secret `npm_ca` is a CA bundle for networks that intercept TLS; it is
# mounted for this step only and never lands in a layer.
RUN --mount=type=secret,id=npm_ca,required=false \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --no-audit --no-fund
# Only the sources the build reads (see .dockerignore, an allowlist).
COPY tsconfig.json tsconfig.build.json ./
COPY plugin ./plugin
COPY service ./service
# tsc to dist/ (the ESM build of plugin/ and service/): the runtime image needs no TypeScript and no
# loader, and not the package's CommonJS build either.
RUN npm run build:esm

# ---- prod-deps: production dependencies only, from the lockfile --------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY service/package.json ./service/
# `--workspace=service`: the service's dependencies only (fastify, pino, @fastify/websocket and
# what the plugin imports), none of the doctor's. (Your app, a single package, runs
# `npm ci --omit=dev`.) `npm ls` fails the build if fastify is missing; the workspace's own
# link is removed, since service/ is not in this image (dist/service is).
RUN --mount=type=secret,id=npm_ca,required=false \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --omit=dev --workspace=service --no-audit --no-fund \
    && npm ls --omit=dev --workspace=service fastify >/dev/null \
    && rm node_modules/fastify-graceful-k8s-service

# ---- runtime: what runs in the pod ------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# Production mode for fastify's dependencies and anything that reads NODE_ENV.
ENV NODE_ENV=production
WORKDIR /app
# Root-owned and read-only to the app's user: the code cannot be changed at run time,
# and the pod can run with readOnlyRootFilesystem.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json carries "type": "module", which Node needs to load dist/ as ESM.
COPY package.json ./
# Non-root, numeric: Kubernetes' runAsNonRoot can verify only a numeric user; with a
# name like `node` the kubelet refuses to start the pod unless the pod sets runAsUser.
# 1000:1000 is the `node` user and group of the official image.
USER 1000:1000
# Documentation only: the port the service listens on (env PORT, default 3000).
EXPOSE 3000
# Exec form, so node is PID 1 and receives SIGHUP/SIGTERM itself. The shell form
# (`CMD node dist/...`) makes /bin/sh PID 1, which does not pass signals on; `npm start`
# is a wrapper too. The same command starts the service from the repository root.
CMD ["node", "dist/service/main.js"]
