-- AlterTable
ALTER TABLE "Seller" ADD COLUMN     "payoutAccountUpdatedAt" TIMESTAMP(3),
ADD COLUMN     "payoutBic" TEXT,
ADD COLUMN     "payoutHolderName" TEXT,
ADD COLUMN     "payoutIban" TEXT;
