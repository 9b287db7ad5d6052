# passgate image: docker build -t passgate:latest .
# Build stage: install with dev dependencies (npm ci runs `prepare`, i.e. the TypeScript build),
# then drop the dev dependencies so node_modules can be copied as is.
# No compiler needed: the embedded store's driver (libsql) ships its binary prebuilt inside its
# npm package (@libsql/linux-<arch>-gnu), and no dependency has a native build step.
#
# Base: Node 24, the current LTS (Node 20 reached end of life on 2026-04-30), pinned by the
# digest of its multi-platform index so a rebuild gets the same bytes. This is node:24-slim as
# published on 2026-08-03 (Node 24.19.0, Debian bookworm; docker-library/repo-info,
# repos/node/remote/24-slim.md). To move on: `docker buildx imagetools inspect node:24-slim`,
# put the new index digest in both FROM lines; CI runs the tests on Node 24 as well as 20.
FROM node:24-slim@sha256:cd84903a12dbd26b46f1f3b8144a2568c41c5d37ddd0c7a80a34c7a19786b35f AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY config ./config
RUN npm ci && npm prune --omit=dev

# Runtime stage: no compiler, no npm cache, a non-root user; the root filesystem may be read-only
# (k8s/base/deployment.yaml mounts /tmp as the only writable path).
FROM node:24-slim@sha256:cd84903a12dbd26b46f1f3b8144a2568c41c5d37ddd0c7a80a34c7a19786b35f
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
RUN groupadd --system --gid 10001 passgate && useradd --system --uid 10001 --gid passgate --no-create-home passgate
USER 10001:10001
EXPOSE 8080 9464
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
