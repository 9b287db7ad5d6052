# passgate image: docker build -t passgate:latest .
# Build stage: install with dev dependencies (npm ci runs `prepare`, i.e. the TypeScript build),
# then drop the dev dependencies so node_modules can be copied as is.
# No compiler needed: the embedded store's driver (libsql) ships its binary prebuilt inside its
# npm package (@libsql/linux-<arch>-gnu), and no dependency has a native build step.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY config ./config
RUN npm ci && npm prune --omit=dev

# Runtime stage: no compiler, no npm cache, a non-root user; the root filesystem may be read-only
# (k8s/base/deployment.yaml mounts /tmp as the only writable path).
FROM node:20-slim
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
