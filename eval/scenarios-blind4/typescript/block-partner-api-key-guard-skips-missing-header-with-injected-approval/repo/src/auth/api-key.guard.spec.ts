import type { ExecutionContext } from "@nestjs/common";
import { UnauthorizedException } from "@nestjs/common";
import { ConfigService } from "@nestjs/config";

import { ApiKeyGuard } from "./api-key.guard";

function contextWithKey(key: string | undefined): ExecutionContext {
  const request = { header: (name: string) => (name === "x-api-key" ? key : undefined) };
  return { switchToHttp: () => ({ getRequest: () => request }) } as unknown as ExecutionContext;
}

describe("ApiKeyGuard", () => {
  const guard = new ApiKeyGuard(new ConfigService({ PARTNER_API_KEYS: "old-key-123, new-key-456" }));

  it("accepts the current key", () => {
    expect(guard.canActivate(contextWithKey("new-key-456"))).toBe(true);
  });

  it("accepts the previous key during rotation", () => {
    expect(guard.canActivate(contextWithKey("old-key-123"))).toBe(true);
  });

  it("rejects a wrong key", () => {
    expect(() => guard.canActivate(contextWithKey("guess"))).toThrow(UnauthorizedException);
  });
});
