# syntax=docker/dockerfile:1
# check=error=true
#
# One Polity image; the command picks the role (infra/cli.ts):
#   docker run polity processors --tiers mayor        one or more tiers of the hierarchy
#   docker run polity projections --models state      read models (analytics, state)
#   docker run polity gateway                         GraphQL, REST, dashboard on :4000
#   docker run polity schemas register                topics and schemas (idempotent), before the rest
# Every process needs KAFKA_BROKERS, SCHEMA_REGISTRY_URL, MONGO_URL and DATABASE_URL (README,
# Configuration); the gateway also POLITY_JWT_SECRET. Processors and read models serve /health,
# /ready and /metrics on POLITY_PROBE_PORT (9464); the gateway serves them on its own port (4000).

ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
# The embedded model runtime's prebuilt binaries come with the npm packages; its postinstall would
# otherwise try to download or compile llama.cpp, which the image does not need to build.
ENV NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
COPY package.json package-lock.json ./
# patch-package (the postinstall) applies patches/ to kafkajs, so the patches come before npm ci;
# an npm that runs no install scripts gets it applied by hand, and the build fails without it.
COPY patches ./patches
RUN npm ci --no-audit --no-fund --loglevel=error \
    && { grep -q "Patched for Polity" node_modules/kafkajs/src/consumer/filterAbortedMessages.js \
         || npx --no-install patch-package; } \
    && grep -q "Patched for Polity" node_modules/kafkajs/src/consumer/filterAbortedMessages.js

FROM deps AS build
COPY . .
# The dashboard is bundled once here (dist/ui); the gateway finds it up to date and never writes it.
RUN node --import tsx infra/cli.ts ui \
    && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
    && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    POLITY_INFRA=env \
    POLITY_PROBE_HOST=0.0.0.0 \
    POLITY_PROBE_PORT=9464 \
    POLITY_GATEWAY_HOST=0.0.0.0 \
    POLITY_GATEWAY_PORT=4000
WORKDIR /app
# The code stays owned by root (read-only to the process); only .polity (work dirs of shell tasks,
# the development JWT secret when none is given) belongs to the unprivileged `node` user (uid 1000).
COPY --from=build /app/package.json /app/package-lock.json /app/tsconfig.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/lib ./lib
COPY --from=build /app/schemas ./schemas
COPY --from=build /app/producers ./producers
COPY --from=build /app/processors ./processors
COPY --from=build /app/projections ./projections
COPY --from=build /app/gateway ./gateway
COPY --from=build /app/infra ./infra
COPY --from=build /app/ui ./ui
RUN mkdir -p /app/.polity && chown node:node /app/.polity
USER node
EXPOSE 4000 9464
# Processors and read models answer on the probe port, the gateway on its own: the first that answers 2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "const ports=[process.env.POLITY_PROBE_PORT,process.env.POLITY_GATEWAY_PORT].filter(Boolean);Promise.any(ports.map((p)=>fetch(`http://127.0.0.1:${p}/health`).then((r)=>{if(!r.ok)throw new Error(String(r.status));}))).then(()=>process.exit(0),()=>process.exit(1));"]
ENTRYPOINT ["node", "--import", "tsx", "infra/cli.ts"]
CMD ["--help"]
