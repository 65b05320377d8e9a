"""The management API's SDL, shaped as Saleor's schema; event enums come from the registry."""

from __future__ import annotations

from collections.abc import Iterable

from ..events import ANY_EVENTS, EventRegistry

__all__ = ["management_sdl"]

_TYPES = """
scalar DateTime
scalar JSONString

interface Node {
  id: ID!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

enum OrderDirection {
  ASC
  DESC
}

type Permission {
  code: PermissionEnum!
  name: String!
}

enum AppTypeEnum {
  LOCAL
  THIRDPARTY
}

enum JobStatusEnum {
  PENDING
  SUCCESS
  FAILED
  DELETED
}

enum EventDeliveryStatusEnum {
  PENDING
  SUCCESS
  FAILED
}

enum WebhookErrorCode {
  GRAPHQL_ERROR
  INVALID
  NOT_FOUND
  REQUIRED
  UNIQUE
  DELETE_FAILED
  SYNTAX
  MISSING_SUBSCRIPTION
  UNABLE_TO_PARSE
  MISSING_EVENT
  INVALID_CUSTOM_HEADERS
  INVALID_NOTIFY_WITH_SUBSCRIPTION
}

enum WebhookDryRunErrorCode {
  GRAPHQL_ERROR
  NOT_FOUND
  INVALID_ID
  MISSING_PERMISSION
  TYPE_NOT_SUPPORTED
  SYNTAX
  MISSING_SUBSCRIPTION
  UNABLE_TO_PARSE
  MISSING_EVENT
}

enum WebhookTriggerErrorCode {
  GRAPHQL_ERROR
  NOT_FOUND
  INVALID_ID
  MISSING_PERMISSION
  TYPE_NOT_SUPPORTED
  SYNTAX
  MISSING_SUBSCRIPTION
  UNABLE_TO_PARSE
  MISSING_QUERY
  MISSING_EVENT
}

enum AppErrorCode {
  FORBIDDEN
  GRAPHQL_ERROR
  INVALID
  INVALID_STATUS
  INVALID_PERMISSION
  INVALID_URL_FORMAT
  INVALID_MANIFEST_FORMAT
  INVALID_CUSTOM_HEADERS
  DUPLICATED_EXTENSION_IDENTIFIER
  DUPLICATED_WEBHOOK_IDENTIFIER
  MANIFEST_URL_CANT_CONNECT
  NOT_FOUND
  REQUIRED
  UNIQUE
  OUT_OF_SCOPE_APP
  OUT_OF_SCOPE_PERMISSION
  UNSUPPORTED_SALEOR_VERSION
}

type WebhookError {
  field: String
  message: String
  code: WebhookErrorCode!
}

type WebhookDryRunError {
  field: String
  message: String
  code: WebhookDryRunErrorCode!
}

type WebhookTriggerError {
  field: String
  message: String
  code: WebhookTriggerErrorCode!
}

type AppError {
  field: String
  message: String
  code: AppErrorCode!
  permissions: [PermissionEnum!]
}

type WebhookEvent {
  name: String!
  eventType: WebhookEventTypeEnum!
}

type WebhookEventAsync {
  name: String!
  eventType: WebhookEventTypeAsyncEnum!
}

type WebhookEventSync {
  name: String!
  eventType: WebhookEventTypeSyncEnum!
}

input EventDeliveryFilterInput {
  status: EventDeliveryStatusEnum
  eventType: WebhookEventTypeEnum
}

type Webhook implements Node {
  id: ID!
  name: String
  identifier: String
  events: [WebhookEvent!]! @deprecated(reason: "Use `asyncEvents` or `syncEvents` instead.")
  syncEvents: [WebhookEventSync!]!
  asyncEvents: [WebhookEventAsync!]!
  app: App!
  eventDeliveries(
    sortBy: EventDeliverySortingInput
    filter: EventDeliveryFilterInput
    before: String
    after: String
    first: Int
    last: Int
  ): EventDeliveryCountableConnection
  targetUrl: String!
  isActive: Boolean!
  secretKey: String @deprecated(reason: "{jws}")
  subscriptionQuery: String
  customHeaders: JSONString
}

type EventDelivery implements Node {
  id: ID!
  createdAt: DateTime!
  status: EventDeliveryStatusEnum!
  eventType: WebhookEventTypeEnum!
  attempts(
    sortBy: EventDeliveryAttemptSortingInput
    before: String
    after: String
    first: Int
    last: Int
  ): EventDeliveryAttemptCountableConnection
  payload: String
}

type EventDeliveryAttempt implements Node {
  id: ID!
  createdAt: DateTime!
  taskId: String
  duration: Float
  response: String
  responseHeaders: String
  responseStatusCode: Int
  requestHeaders: String
  status: EventDeliveryStatusEnum!
}

type EventDeliveryCountableConnection {
  pageInfo: PageInfo!
  edges: [EventDeliveryCountableEdge!]!
  totalCount: Int
}

type EventDeliveryCountableEdge {
  node: EventDelivery!
  cursor: String!
}

type EventDeliveryAttemptCountableConnection {
  pageInfo: PageInfo!
  edges: [EventDeliveryAttemptCountableEdge!]!
  totalCount: Int
}

type EventDeliveryAttemptCountableEdge {
  node: EventDeliveryAttempt!
  cursor: String!
}

type AppToken implements Node {
  id: ID!
  name: String
  authToken: String
}

type MetadataItem {
  key: String!
  value: String!
}

enum EventDeliverySortField {
  CREATED_AT
}

input EventDeliverySortingInput {
  direction: OrderDirection!
  field: EventDeliverySortField!
}

enum EventDeliveryAttemptSortField {
  CREATED_AT
}

input EventDeliveryAttemptSortingInput {
  direction: OrderDirection!
  field: EventDeliveryAttemptSortField!
}

enum AppSortField {
  NAME
  CREATION_DATE
}

input AppSortingInput {
  direction: OrderDirection!
  field: AppSortField!
}

type App implements Node {
  id: ID!
  metadata: [MetadataItem!]!
  privateMetadata: [MetadataItem!]!
  identifier: String
  permissions: [Permission!]
  created: DateTime
  isActive: Boolean
  name: String
  type: AppTypeEnum
  tokens: [AppToken!]
  webhooks: [Webhook!]
  aboutApp: String
  dataPrivacyUrl: String
  homepageUrl: String
  supportUrl: String
  appUrl: String
  manifestUrl: String
  version: String
  accessToken: String
  author: String
}

type AppCountableConnection {
  pageInfo: PageInfo!
  edges: [AppCountableEdge!]!
  totalCount: Int
}

type AppCountableEdge {
  node: App!
  cursor: String!
}

input AppFilterInput {
  search: String
  isActive: Boolean
  type: AppTypeEnum
}

type AppInstallation implements Node {
  id: ID!
  status: JobStatusEnum!
  createdAt: DateTime!
  updatedAt: DateTime!
  message: String
  appName: String!
  manifestUrl: String!
}

type AppManifestWebhook {
  name: String!
  asyncEvents: [WebhookEventTypeAsyncEnum!]
  syncEvents: [WebhookEventTypeSyncEnum!]
  query: String!
  targetUrl: String!
}

type AppManifestRequiredSaleorVersion {
  constraint: String!
  satisfied: Boolean!
}

type Manifest {
  identifier: String!
  version: String!
  name: String!
  about: String
  permissions: [Permission!]
  appUrl: String
  tokenTargetUrl: String
  dataPrivacyUrl: String
  homepageUrl: String
  supportUrl: String
  webhooks: [AppManifestWebhook!]!
  audience: String
  requiredSaleorVersion: AppManifestRequiredSaleorVersion
  author: String
}

input WebhookCreateInput {
  name: String
  identifier: String
  targetUrl: String
  events: [WebhookEventTypeEnum!] @deprecated(reason: "Use `asyncEvents` or `syncEvents` instead.")
  asyncEvents: [WebhookEventTypeAsyncEnum!]
  syncEvents: [WebhookEventTypeSyncEnum!]
  app: ID
  isActive: Boolean
  secretKey: String @deprecated(reason: "{jws}")
  query: String
  customHeaders: JSONString
}

input WebhookUpdateInput {
  name: String
  identifier: String
  targetUrl: String
  events: [WebhookEventTypeEnum!] @deprecated(reason: "Use `asyncEvents` or `syncEvents` instead.")
  asyncEvents: [WebhookEventTypeAsyncEnum!]
  syncEvents: [WebhookEventTypeSyncEnum!]
  app: ID
  isActive: Boolean
  secretKey: String @deprecated(reason: "{jws}")
  query: String
  customHeaders: JSONString
}

input AppInput {
  name: String
  identifier: String
  permissions: [PermissionEnum!]
}

input AppTokenInput {
  name: String
  app: ID!
}

input AppInstallInput {
  appName: String!
  manifestUrl: String!
  activateAfterInstallation: Boolean = true
  permissions: [PermissionEnum!]
}

type WebhookCreate {
  webhookErrors: [WebhookError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [WebhookError!]!
  webhook: Webhook
}

type WebhookUpdate {
  webhookErrors: [WebhookError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [WebhookError!]!
  webhook: Webhook
}

type WebhookDelete {
  webhookErrors: [WebhookError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [WebhookError!]!
  webhook: Webhook
}

type WebhookDryRun {
  payload: JSONString
  errors: [WebhookDryRunError!]!
}

type WebhookTrigger {
  delivery: EventDelivery
  errors: [WebhookTriggerError!]!
}

type EventDeliveryRetry {
  delivery: EventDelivery
  errors: [WebhookError!]!
}

type AppCreate {
  authToken: String
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  app: App
}

type AppUpdate {
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  app: App
}

type AppDelete {
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  app: App
}

type AppActivate {
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  app: App
}

type AppDeactivate {
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  app: App
}

type AppTokenCreate {
  authToken: String
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  appToken: AppToken
}

type AppTokenDelete {
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  appToken: AppToken
}

type AppTokenVerify {
  valid: Boolean!
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
}

type AppInstall {
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
  appInstallation: AppInstallation
}

type AppFetchManifest {
  manifest: Manifest
  appErrors: [AppError!]! @deprecated(reason: "Use `errors` field instead.")
  errors: [AppError!]!
}
"""

_QUERY = """
type {query} {{
  webhook(id: ID!): Webhook
  webhookEvents: [WebhookEvent!] @deprecated(reason: "{{events}}")
  app(id: ID): App
  apps(
    filter: AppFilterInput
    sortBy: AppSortingInput
    before: String
    after: String
    first: Int
    last: Int
  ): AppCountableConnection
  appsInstallations: [AppInstallation!]!
}}
"""

_MUTATION = """
type {mutation} {{
  webhookCreate(input: WebhookCreateInput!): WebhookCreate
  webhookUpdate(id: ID, identifier: String, input: WebhookUpdateInput!): WebhookUpdate
  webhookDelete(id: ID, identifier: String): WebhookDelete
  webhookDryRun(objectId: ID!, query: String!): WebhookDryRun
  webhookTrigger(objectId: ID!, webhookId: ID!): WebhookTrigger
  eventDeliveryRetry(id: ID!): EventDeliveryRetry
  appCreate(input: AppInput!): AppCreate
  appUpdate(id: ID!, input: AppInput!): AppUpdate
  appDelete(id: ID!): AppDelete
  appActivate(id: ID!): AppActivate
  appDeactivate(id: ID!): AppDeactivate
  appTokenCreate(input: AppTokenInput!): AppTokenCreate
  appTokenDelete(id: ID!): AppTokenDelete
  appTokenVerify(token: String!): AppTokenVerify
  appInstall(input: AppInstallInput!): AppInstall
  appFetchManifest(manifestUrl: String!): AppFetchManifest
}}
"""


_JWS_REASON = "As of Saleor 3.5, webhook payloads default to signing using a verifiable JWS."
_EVENTS_REASON = (
    "Use `WebhookEventTypeAsyncEnum` and `WebhookEventTypeSyncEnum` to get available event types."
)


def _enum(name: str, values: Iterable[str]) -> str:
    body = "\n".join(f"  {v}" for v in values)
    return f"enum {name} {{\n{body}\n}}\n"


def management_sdl(
    registry: EventRegistry, *, query: str = "Query", mutation: str = "Mutation"
) -> str:
    """Every type, query and mutation of the management API as SDL text.

    ``WebhookEventTypeEnum`` (every event and ``ANY_EVENTS``), ``WebhookEventTypeAsyncEnum``
    (async events and ``ANY_EVENTS``), ``WebhookEventTypeSyncEnum`` and ``PermissionEnum``
    list what ``registry`` knows, host events and permissions included.
    """
    events = sorted(registry, key=lambda e: e.name)
    wildcard = ANY_EVENTS.upper()
    enums = (
        _enum("WebhookEventTypeEnum", [wildcard, *(e.name for e in events)])
        + _enum("WebhookEventTypeAsyncEnum", [wildcard, *(e.name for e in events if e.is_async)])
        + _enum("WebhookEventTypeSyncEnum", [e.name for e in events if not e.is_async])
        + _enum("PermissionEnum", sorted(registry.permissions))
    )
    return _TYPES + enums + _QUERY.format(query=query) + _MUTATION.format(mutation=mutation)
