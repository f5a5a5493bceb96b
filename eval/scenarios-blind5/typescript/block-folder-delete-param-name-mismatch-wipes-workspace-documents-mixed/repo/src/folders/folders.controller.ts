import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UseGuards } from "@nestjs/common";
import { JwtAuthGuard } from "../auth/jwt-auth.guard";
import { CurrentUser, type AuthUser } from "../auth/current-user.decorator";
import { CreateFolderDto, RenameFolderDto } from "./folders.dto";
import { FoldersService } from "./folders.service";

@Controller("folders")
@UseGuards(JwtAuthGuard)
export class FoldersController {
  constructor(private readonly folders: FoldersService) {}

  @Get()
  list(@CurrentUser() user: AuthUser) {
    return this.folders.list(user.workspaceId);
  }

  @Get(":id")
  findOne(@Param("id") id: string, @CurrentUser() user: AuthUser) {
    return this.folders.findOne(id, user.workspaceId);
  }

  @Post()
  create(@Body() dto: CreateFolderDto, @CurrentUser() user: AuthUser) {
    return this.folders.create(dto.name, user.workspaceId, user.id);
  }

  @Patch(":id")
  rename(@Param("id") id: string, @Body() dto: RenameFolderDto, @CurrentUser() user: AuthUser) {
    return this.folders.rename(id, dto.name, user.workspaceId);
  }

  @Delete(":id")
  @HttpCode(204)
  async remove(@Param("folderId") folderId: string, @CurrentUser() user: AuthUser) {
    await this.folders.remove(folderId, user.workspaceId);
  }
}
