# Escapement: one image for the controller, the workers and the client tools.
# Multi-stage: dependencies and the TypeScript build in the first stage, a slim non-root runtime after.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# onnxruntime-node's install script would download CUDA binaries; the CPU provider is bundled.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The whole build context (.dockerignore leaves out node_modules, dist, runs, results and .git), so
# that no source folder can be forgotten: test/integration/containers.test.ts type-checks exactly this.
COPY . .
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production ESCAPEMENT_LOG_FORMAT=json
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY bin bin
COPY models models
COPY datasets datasets
COPY traces traces
COPY zoo zoo
USER node
# Controller: 5555 workers (ZeroMQ), 5556 clients (ZeroMQ), 8000 HTTP (Open Inference Protocol, /metrics).
EXPOSE 5555 5556 8000
ENTRYPOINT ["bin/escapement"]
CMD ["--help"]
