import { Controller, Get, Query, UseGuards } from "@nestjs/common";

import { CurrentOrg } from "../auth/current-org.decorator";
import { OrgAdminGuard } from "../auth/org-admin.guard";
import { AuditService } from "./audit.service";

const DEFAULT_PAGE_SIZE = 50;

@Controller("audit-events")
@UseGuards(OrgAdminGuard)
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  list(
    @CurrentOrg() orgId: string,
    @Query("cursor") cursor?: string,
    @Query("limit") limit?: string,
    @Query("action") action?: string,
  ) {
    // The nightly SIEM export pulls much bigger pages than the UI does.
    const take = limit ? Number(limit) : DEFAULT_PAGE_SIZE;
    return this.audit.list(orgId, { cursor, take, action });
  }
}
