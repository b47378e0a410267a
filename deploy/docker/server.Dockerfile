# cowroot fleet server. Build from the repository root:
#   docker build -f deploy/docker/server.Dockerfile -t cowroot-server .
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json ./
COPY libs ./libs
COPY apps/server ./apps/server
# the dashboard, built by build:server (npm run build:web) and served by the server at /
COPY apps/web ./apps/web
RUN npm run build:server && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production DATA_DIR=/var/lib/cowroot STORAGE_DIR=/var/lib/cowroot/artifacts
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
RUN mkdir -p /var/lib/cowroot && chown node:node /var/lib/cowroot
USER node
VOLUME /var/lib/cowroot
EXPOSE 3000 1883 8883
HEALTHCHECK --interval=30s --timeout=5s CMD node -e "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/apps/server/src/main.js"]
