import { Injectable } from "@nestjs/common";
import type { Prisma } from "@prisma/client";
import { PrismaService } from "../prisma/prisma.service";
import type { UpdateProfileDto } from "./dto/update-profile.dto";

const PROFILE_FIELDS = {
  id: true,
  email: true,
  displayName: true,
  bio: true,
  timezone: true,
  locale: true,
} satisfies Prisma.UserSelect;

@Injectable()
export class ProfileService {
  constructor(private readonly prisma: PrismaService) {}

  get(userId: string) {
    return this.prisma.user.findUniqueOrThrow({
      where: { id: userId },
      select: PROFILE_FIELDS,
    });
  }

  update(userId: string, dto: UpdateProfileDto) {
    return this.prisma.user.update({
      where: { id: userId },
      data: { ...dto },
      select: PROFILE_FIELDS,
    });
  }
}
