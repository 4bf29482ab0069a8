# syntax=docker/dockerfile:1
# eps-probe-plugin: one image for the agent, the controller and the probe CLI (docs/deploy.md).
#   docker build -t <your-registry>/eps-probe-plugin:0.1.0 .
# The runtime stage runs no command at build time and nothing in it needs a shell at run time.

ARG NODE_IMAGE=node:24-bookworm-slim

# Compilers for the raw-socket native addon (node-gyp) and setcap.
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp builds against the headers that come with the image's Node.js instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./

# TypeScript to dist/. tsc needs no install scripts, so the native addon is built once, in `deps`.
FROM toolchain AS build
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# Production dependencies only, raw-socket compiled for this Node.js and libc.
FROM toolchain AS deps
RUN npm ci --omit=dev \
 && npm cache clean --force \
 && test -f node_modules/raw-socket/build/Release/raw.node

# A copy of node holding cap_net_raw, so that a non-root agent can open raw ICMP sockets. Plain `node`
# stays without it: a binary with a file capability fails to start where NET_RAW is not granted.
FROM toolchain AS caps
RUN cp /usr/local/bin/node /usr/local/bin/node-net-raw \
 && setcap cap_net_raw+ep /usr/local/bin/node-net-raw

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=caps /usr/local/bin/node-net-raw /usr/local/bin/node-net-raw
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER 65532:65532
EXPOSE 9464 9465
ENTRYPOINT ["node", "dist/cli/main.js"]
