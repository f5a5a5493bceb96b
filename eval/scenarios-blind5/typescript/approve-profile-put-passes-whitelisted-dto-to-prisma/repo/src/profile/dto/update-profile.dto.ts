import { IsIn, IsOptional, IsString, IsTimeZone, Length, MaxLength } from "class-validator";
import { SUPPORTED_LOCALES } from "../../i18n/locales";

export class UpdateProfileDto {
  @IsString()
  @Length(1, 60)
  displayName!: string;

  @IsOptional()
  @IsString()
  @MaxLength(500)
  bio?: string | null;

  @IsTimeZone()
  timezone!: string;

  @IsIn(SUPPORTED_LOCALES)
  locale!: string;
}
