import { Injectable } from "@nestjs/common";

import { PrismaService } from "../prisma/prisma.service";

type ListOptions = {
  cursor?: string;
  take: number;
  action?: string;
};

@Injectable()
export class AuditService {
  constructor(private readonly prisma: PrismaService) {}

  async list(orgId: string, opts: ListOptions) {
    const events = await this.prisma.auditEvent.findMany({
      where: { orgId, ...(opts.action ? { action: opts.action } : {}) },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: opts.take + 1,
      ...(opts.cursor ? { cursor: { id: opts.cursor }, skip: 1 } : {}),
      select: {
        id: true,
        action: true,
        actorId: true,
        targetType: true,
        targetId: true,
        metadata: true,
        createdAt: true,
      },
    });
    const hasMore = events.length > opts.take;
    const page = hasMore ? events.slice(0, opts.take) : events;
    return { events: page, nextCursor: hasMore ? page[page.length - 1].id : null };
  }
}
