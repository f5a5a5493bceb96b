import { Injectable, Logger, NotFoundException } from "@nestjs/common";
import { PrismaService } from "../prisma/prisma.service";

@Injectable()
export class FoldersService {
  private readonly logger = new Logger(FoldersService.name);

  constructor(private readonly prisma: PrismaService) {}

  list(workspaceId: string) {
    return this.prisma.folder.findMany({
      where: { workspaceId },
      orderBy: { name: "asc" },
      include: { _count: { select: { documents: true } } },
    });
  }

  async findOne(id: string, workspaceId: string) {
    const folder = await this.prisma.folder.findFirst({ where: { id, workspaceId } });
    if (!folder) throw new NotFoundException();
    return folder;
  }

  create(name: string, workspaceId: string, createdById: string) {
    return this.prisma.folder.create({ data: { name, workspaceId, createdById } });
  }

  async rename(id: string, name: string, workspaceId: string) {
    const { count } = await this.prisma.folder.updateMany({ where: { id, workspaceId }, data: { name } });
    if (count === 0) throw new NotFoundException();
    return this.findOne(id, workspaceId);
  }

  /** Deletes the folder and every document in it. Idempotent: a missing folder is not an error. */
  async remove(folderId: string, workspaceId: string) {
    const [documents, folders] = await this.prisma.$transaction([
      this.prisma.document.deleteMany({ where: { folderId, workspaceId } }),
      this.prisma.folder.deleteMany({ where: { id: folderId, workspaceId } }),
    ]);
    this.logger.log(`folder ${folderId}: removed ${folders.count} folder(s) and ${documents.count} document(s)`);
  }
}
