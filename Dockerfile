# syntax=docker/dockerfile:1
# eps-probe-plugin: one image for the agent, the controller and the probe CLI (docs/deploy.md).
#   make image IMAGE=<your-registry>/eps-probe-plugin:0.1.0      (podman, hack/build-image.sh)
#   docker build -t <your-registry>/eps-probe-plugin:0.1.0 .
# Build stages run on Debian bookworm with the base image's Node.js. The runtime stage starts from
# scratch: node, the C/C++ runtime libraries it loads, the app and the node-net-raw launcher; no shell,
# no package manager, no npm, no compiler, and nothing runs in it at build time.

ARG NODE_IMAGE=docker.io/library/node:24.21.0-bookworm-slim

# Compilers for the native addons (raw-socket's and ours, with node-gyp) and the launcher, and setcap.
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp builds against the headers that come with the image's Node.js instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./

# TypeScript to dist/. tsc needs no install scripts, so the native addon is built once, in `deps`.
# The optional secrets carry the builder's npm configuration (registry, CA file: hack/build-image.sh).
FROM toolchain AS build
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc --mount=type=secret,id=npm_ca,target=/run/secrets/npm_ca \
    npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY hack/bundle.mjs ./hack/
RUN npx tsc -p tsconfig.json && node hack/bundle.mjs

# Production dependencies only, raw-socket and the half-open prober's native part (npm ci's install
# script: build/Release/syn.node) compiled for this Node.js and libc. Type declarations, source maps and
# the addons' intermediate build files are never loaded at run time (40% of the size).
FROM toolchain AS deps
COPY binding.gyp ./
COPY native ./native
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc --mount=type=secret,id=npm_ca,target=/run/secrets/npm_ca \
    npm ci --omit=dev \
 && npm cache clean --force \
 && test -f node_modules/raw-socket/build/Release/raw.node \
 && test -f build/Release/syn.node \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete \
 && rm -rf node_modules/raw-socket/build/Release/obj.target

# node-net-raw holds cap_net_raw as a permitted-only file capability and hands NET_RAW to node where
# the container grants it (hack/node-net-raw.c explains why not a copy of node with the capability).
FROM toolchain AS caps
COPY hack/node-net-raw.c ./
RUN gcc -O2 -Wall -Wextra -Werror -o /usr/local/bin/node-net-raw node-net-raw.c \
 && setcap cap_net_raw+p /usr/local/bin/node-net-raw

# The runtime's files: node and the shared libraries that node, the addon and the launcher load, the
# dpkg records and copyright files of their packages (for image scanners and licences), users root and
# nonroot (65532), as distroless images have them.
FROM deps AS rootfs
COPY --from=caps /usr/local/bin/node-net-raw /tmp/node-net-raw
RUN mkdir -p /rootfs/usr/local/bin /rootfs/etc /rootfs/var/lib/dpkg/status.d /rootfs/home/nonroot \
 && install -d -m 1777 /rootfs/tmp \
 && chown 65532:65532 /rootfs/home/nonroot \
 && cp /usr/local/bin/node /rootfs/usr/local/bin/node \
 && ldd /usr/local/bin/node node_modules/raw-socket/build/Release/raw.node build/Release/syn.node /tmp/node-net-raw \
    | awk '/\(0x[0-9a-f]+\)$/ && $(NF-1) ~ /^\// { print $(NF-1) }' | sort -u >/tmp/libraries \
 && for library in $(cat /tmp/libraries); do \
      cp --parents -L "$library" /rootfs/ \
      && dpkg-query --search "*/$(basename "$(readlink -f "$library")")" | cut -d: -f1 >>/tmp/packages; \
    done \
 && for package in $(sort -u /tmp/packages); do \
      dpkg-query --status "$package" >"/rootfs/var/lib/dpkg/status.d/$package" \
      && if [ -f "/usr/share/doc/$package/copyright" ]; then cp --parents "/usr/share/doc/$package/copyright" /rootfs/; fi; \
    done \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' >/rootfs/etc/group \
 && printf 'hosts: files dns\n' >/rootfs/etc/nsswitch.conf

FROM scratch AS runtime
COPY --from=rootfs /rootfs/ /
COPY --from=caps /usr/local/bin/node-net-raw /usr/local/bin/node-net-raw
# The bundle holds every JavaScript dependency; only native addons load from files: the ICMP addon
# and its wrapper from node_modules, the half-open prober's from build/Release.
COPY --from=deps /app/node_modules/net-ping /app/node_modules/net-ping
COPY --from=deps /app/node_modules/raw-socket /app/node_modules/raw-socket
COPY --from=build /app/dist/eps-probe-plugin.js /app/dist/tcp-thread-entry.js /app/dist/
COPY --from=deps /app/build/Release/syn.node /app/build/Release/syn.node
COPY package.json /app/
ENV PATH=/usr/local/bin NODE_ENV=production
WORKDIR /app
USER 65532:65532
EXPOSE 9464 9465
ENTRYPOINT ["node", "dist/eps-probe-plugin.js"]
